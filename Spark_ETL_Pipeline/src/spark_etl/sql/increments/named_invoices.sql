select distinct try_cast(trim(raw_invoice_line_items.invoice_id) as bigint) as invoice_id
from raw_invoice_line_items
