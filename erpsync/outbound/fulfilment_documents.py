"""GraphQL documents of the fulfilment job (PROTOCOL.md §2.5), validated against the contract SDL.

One mutation per document: every step's result is recorded before the next is sent.
"""

from __future__ import annotations

from erpsync.outbound.documents import PAYLOAD_NOTES

SHIPMENT_FIELDS = "id number isGoodToGo isPaid isCaptured isShipped lines { quantity orderLine { id } }"

#: The order as the job needs it: lines (with fully cancelled ones) and the shipments it already has.
ORDER_FOR_FULFILMENT = f"""
query OrderForFulfilment($numbers: [Int!]!, $limit: Int!) {{
  orders(where: {{number: $numbers}}, limit: $limit) {{
    __typename number status isOnHold isLocked
    lines(includeFullyCancelled: true) {{ id quantity cancelledQuantity productSize {{ SKU EAN }} }}
    shipments {{ {SHIPMENT_FIELDS} }}
  }}
}}
"""

SHIPMENT_BY_EXTERNAL_ID = f"""
query ShipmentByExternalId($externalId: String!) {{
  shipment(externalId: $externalId) {{ {SHIPMENT_FIELDS} }}
}}
"""

SHIPMENT_BY_ID = f"""
query ShipmentById($id: Int!) {{
  shipment(id: $id) {{ {SHIPMENT_FIELDS} }}
}}
"""

CREATE_SHIPMENT = f"""
mutation CreateShipment($input: ShipmentCreateInput!) {{
  createShipment(input: $input) {{ shipment {{ {SHIPMENT_FIELDS} }} {PAYLOAD_NOTES} }}
}}
"""

UPDATE_SHIPMENT = f"""
mutation UpdateShipment($id: Int!, $input: ShipmentUpdateInput!) {{
  updateShipment(id: $id, input: $input) {{ shipment {{ id number isPaid }} {PAYLOAD_NOTES} }}
}}
"""

CAPTURE_SHIPMENT = f"""
mutation CaptureShipment($id: Int!) {{
  captureShipment(id: $id) {{
    shipment {{ id isCaptured isPaid }} paymentHistoryEntry {{ status entryType }} {PAYLOAD_NOTES}
  }}
}}
"""

COMPLETE_SHIPMENT = f"""
mutation CompleteShipment($id: Int!, $input: ShipmentCompleteInput) {{
  completeShipment(id: $id, input: $input) {{ shipment {{ id isShipped }} {PAYLOAD_NOTES} }}
}}
"""

CANCEL_DTC_LINES = f"""
mutation CancelDtcLines($number: Int!, $input: DirectToConsumerOrderUpdateInput!) {{
  updateDirectToConsumerOrder(order: {{number: $number}}, input: $input) {{
    order {{ number lines(includeFullyCancelled: true) {{ id quantity cancelledQuantity }} }} {PAYLOAD_NOTES}
  }}
}}
"""

CANCEL_WHOLESALE_LINES = f"""
mutation CancelWholesaleLines($number: Int!, $input: WholesaleOrderUpdateInput!) {{
  updateWholesaleOrder(order: {{number: $number}}, input: $input) {{
    order {{ number lines(includeFullyCancelled: true) {{ id quantity cancelledQuantity }} }} {PAYLOAD_NOTES}
  }}
}}
"""
