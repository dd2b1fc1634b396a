"""What the workers of one fleet share through Redis, so they act as one careful client:
the rate budget, the session token, resolved contracts, the kill switch and the
pre-trade risk limits."""
