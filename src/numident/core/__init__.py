"""The rules of numident as pure functions over values: standard library only.

No framework, database, HTTP client or other part of numident is imported here (a unit test
walks every module to keep it so); the adapters around core carry its decisions out.

- ``numbers``: E.164 normalisation; ``identification``: the request, its 20-minute deadline and
  what an answer means; ``admission``: whether deferred work can still be answered in time;
- ``registry``: what a lifecycle event does to a number's contract, and which registry
  difference is which event; ``usages``: one active usage per (organizer, code), rule 6;
- ``notices``: the kinds of notice; ``accounts``: a messenger account's states, what a notice
  does to one, valid account ids; ``follow_up``: what each reply of a gateway leads to;
- ``sending``, ``rate``: the budgets of one-time codes; ``ciba``: the rules of a backchannel
  authentication request; ``clock``: the time port.
"""
