"""The order lifecycle after "accepted": the user hub listened to once per login, a mirror
of each account in Redis, the events every strategy reads, and reconciliation after gaps."""
