"""The gateway's real-time hubs: one connection per login for the whole fleet, held by the
worker that holds the leader lease."""
