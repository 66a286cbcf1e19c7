"""Sales modes as aggregates: flash sale, group buying, team purchase, lucky draw, rebate.

Each mode lives in its own module with its own process, and names the extended order process
its orders follow (``order.team``, ``order.lucky_draw``, ...). Import from the modules:
:mod:`~ecommerce_core.campaigns.group_buy`, :mod:`~ecommerce_core.campaigns.team`,
:mod:`~ecommerce_core.campaigns.lucky_draw`, :mod:`~ecommerce_core.campaigns.rebate`.
"""
