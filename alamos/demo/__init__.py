"""The demo workload behind ``alamos demo``: a small layered server over
loopback, concurrent clients, everything instrumented with alamos."""
