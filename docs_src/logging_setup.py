import logging

# The reasons for refusals are logged at INFO on the "oauthguard" logger; uvicorn's
# --log-level sets only its own loggers, so give this one a handler and a level.
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
guard_logger = logging.getLogger("oauthguard")
guard_logger.addHandler(handler)
guard_logger.setLevel(logging.INFO)
