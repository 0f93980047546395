"""The Centra simulator: SOAP event queue + GraphQL Integration API + quota + fault injection.

It is Centra, not erpsync: it shares only the contract files (``erpsync/contract/centra.wsdl`` and
``centra.graphql``) with erpsync's clients, none of their code. Start it with ``erpsync sim`` or from
Python with ``erpsync.sim.server.SimServer(SimOptions(...)).start()``.
"""
