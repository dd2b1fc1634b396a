"""Running the product locally: real processes on one machine for the demo, the pytest
plugin and the benchmarks."""
