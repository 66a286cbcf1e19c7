"""The pricing engine as it was before the performance work, kept to check the fast one.

``engine.py`` and ``working.py`` are verbatim copies of ``ecommerce_core/promotions/engine.py``
and ``working.py`` at commit 5321357 (only the import of ``working`` changed), so
``tests/test_pricing_reference.py`` can check that the optimised engine returns exactly what
the straightforward one did, for any cart and any mix of promotions. Do not optimise these.
"""
