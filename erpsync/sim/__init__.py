"""The Centra simulator: SOAP event queue + GraphQL Integration API + quota + fault injection.

It is Centra, not erpsync: it shares only the contract files (``erpsync/contract/centra.wsdl`` and
``centra.graphql``) with erpsync's clients, none of their code.

Modules:
  ``server``     the threaded HTTP server, routing, ``/_sim/`` control + inspection, ``SimOptions``,
                 ``SimServer`` (``SimServer(SimOptions(port=0)).start()`` → ``(host, port)``; ``.stop()``)
  ``soap``       the SOAP endpoint (lxml): events_Get, events_GetByMarkets, events_Done, orders_Update
  ``events``     the event queue and the object payload ⇄ XML codec
  ``generator``  seeded, realistic orders/customers/accounts/invoices/… and their change events
  ``faults``     fault rules per endpoint (latency, hang, http, 499-after-apply, reset, truncate, …)
  ``control``    ``SimControl``: drive a simulator in another process over HTTP
  ``runner``     foreground run with clean SIGINT/SIGTERM stop (``erpsync sim``)
  ``gql``        the GraphQL Integration API with its six-bucket quota (``GraphqlApp``)
"""
