from oauthguard import require

WRITE_ORDERS = require("orders:write")  # every one of these scopes (a string or a list)
REPORTS = require(any_scopes=["reports:read", "admin"])  # at least one of these
BILLING = require(audience="https://api.example.com/billing")  # a token meant for this resource
MFA = require(acr_values="urn:example:mfa", max_age=300)  # RFC 9470 step-up (acr, auth_time)
CLERKS = require("orders:write", roles="clerk")  # every one of these roles
OUR_CLIENTS = require(clients=["orders-web", "orders-cli"])  # the token's client is one of these
ACME = require(claims={"tenant": "acme"})  # the claim equals it, or holds it
ON_CALL = require(claims={"realm_access.roles": ["ops", "oncall"]})  # a path; holds every one
PRO = require(claims={"https://example.com/plan": "pro"})  # a name with :// is literal
