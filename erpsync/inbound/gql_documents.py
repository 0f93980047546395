"""GraphQL documents of the events source (PROTOCOL.md §2.4), validated against the contract.

``Event.object`` is a union: fields of one name but different types (``Order.id`` is a String,
``Customer.id`` an Int) are aliased per type so the selection is valid.

Selection size, measured against the simulator's complexity formula (``python -m
tests.bench.bench_gql_events``): a page of 200 events with the full order inline costs 61,601
(~308 per event, whatever its type: 25 % of the Growth tier's 10-second bucket); references only
cost 2,201 and the page's 74 distinct orders read with ``orders(where: {number: […]}, limit: 100)``
22,201 — 24,402 in all (9.8 %), 0.40 of the inline cost, and an order with several events in a page
is read once. So the source reads **references** (``EVENTS``, customers and accounts are small and
ride inline) and then the orders by number (``ORDERS_BY_NUMBER``). (Before the lines selected
``product``/``productVariant`` ids, for SOAP's product and variant ids: 49,601 and 19,962.)
"""

from __future__ import annotations

PAGE_LIMIT = 200  # events(limit:) maximum
ORDERS_PAGE = 100  # orders(limit:) maximum
CONFIRM_MAX = 200  # ids per confirmEvents

PAYLOAD_NOTES = "userErrors { message path } userWarnings { message path }"

EVENT_LISTENERS = """
query EventListeners { eventListeners { objectType changeTypes } }
"""

SET_EVENT_LISTENERS = f"""
mutation SetEventListeners($input: [EventListenerSetInput!]!) {{
  setEventListeners(input: $input) {{ eventListeners {{ objectType changeTypes }} {PAYLOAD_NOTES} }}
}}
"""

EVENTS = """
query Events($limit: Int!) {
  events(limit: $limit) {
    id objectType changeType objectReference createdAt
    object {
      __typename
      ... on Customer { customerId: id email firstName lastName }
      ... on Account { accountId: id name }
    }
  }
}
"""

CONFIRM_EVENTS = f"""
mutation ConfirmEvents($ids: [Int!]!) {{
  confirmEvents(input: {{eventsIds: $ids}}) {{ events {{ id }} {PAYLOAD_NOTES} }}
}}
"""

_ADDRESS = "firstName lastName companyName address1 address2 city zipCode stateOrProvince country { code } email"

ORDER_FIELDS = f"""
    __typename id number status createdAt updatedAt
    grandTotal {{ value currency {{ code }} }}
    isLocked isOnHold
    store {{ id }} market {{ id name }} pricelist {{ id externalId }}
    billingAddress {{ {_ADDRESS} }}
    shippingAddress {{ {_ADDRESS} }}
    lines(includeFullyCancelled: true) {{
      id productNumber size productName quantity cancelledQuantity
      unitPrice {{ value }} unitOriginalPrice {{ value }} lineValue {{ value }}
      taxPercent discountPercent
      product {{ id externalId }} productVariant {{ id externalId }}
      productSize {{ SKU EAN }}
    }}
    shipments {{ id number }}
    ... on DirectToConsumerOrder {{ customer {{ id email firstName lastName }} }}
    ... on WholesaleOrder {{ account {{ id name }} }}
"""

ORDERS_BY_NUMBER = f"""
query OrdersByNumber($numbers: [Int!]!, $limit: Int!) {{
  orders(where: {{number: $numbers}}, limit: $limit) {{ {ORDER_FIELDS} }}
}}
"""

ALL_CHANGE_TYPES = ("CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED")

#: the object types erpsync listens to (all change types); any other type that arrives is stored generically
LISTEN_TO = ("Order", "Customer", "Account")

DOCUMENTS = {"EVENT_LISTENERS": EVENT_LISTENERS, "SET_EVENT_LISTENERS": SET_EVENT_LISTENERS, "EVENTS": EVENTS,
             "CONFIRM_EVENTS": CONFIRM_EVENTS, "ORDERS_BY_NUMBER": ORDERS_BY_NUMBER}
