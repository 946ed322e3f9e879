"""Pure collections domain: money, policy, events, commands and the case decider.

No I/O, no clock, no Temporal: the same code runs in the workflow sandbox and in
plain unit tests.
"""
