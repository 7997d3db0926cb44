"""maas-platform: reads the stack's config, then builds each group of layers on the one below."""

from components import config
from components.access import build as access
from components.metering import build as metering
from components.platform import build as platform
from components.serving import build as serving

cfg = config.load()

base = platform.build(cfg)
served = serving.build(cfg, base)
access.build(cfg, base, served)
metering.build(cfg, base, served)
