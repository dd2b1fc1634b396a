"""Unit tests of market data: bars, timeframes, the wire types."""
