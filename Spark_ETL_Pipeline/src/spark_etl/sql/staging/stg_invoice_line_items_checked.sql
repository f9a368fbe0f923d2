-- Grain: one row per record of invoice_line_items.csv (nothing dropped; lines have no key, so exact copies are
-- separate lines). Names the first rule of the contract the line breaks, checked in the contract's order:
-- invalid_value, unknown_invoice, unknown_sku.
with

raw_rows as (
    select * from raw_invoice_line_items
),

invoices as (
    select invoice_id, issue_date from stg_invoices
),

skus as (
    select item_id from stg_skus
),

parsed as (
    select
        case
            when trim(raw_rows.invoice_id) rlike '^[0-9]{1,18}$' then cast(trim(raw_rows.invoice_id) as bigint)
        end as invoice_id,
        nullif(trim(raw_rows.item_id), '') as item_id,
        -- contract: quantity is a positive whole number
        case
            when trim(raw_rows.quantity) rlike '^[0-9]{1,9}$' then cast(trim(raw_rows.quantity) as int)
        end as quantity,
        raw_rows.invoice_id as raw_invoice_id,
        raw_rows.item_id as raw_item_id,
        raw_rows.quantity as raw_quantity,
        raw_rows._corrupt_record as corrupt_record,
        raw_rows._corrupt_record is not null as is_malformed
    from raw_rows
),

classified as (
    select /*+ broadcast(skus) */
        parsed.*,
        -- the folder the line is stored in: its invoice's issue month
        date_format(invoices.issue_date, 'yyyy-MM') as partition_month,
        case
            when parsed.is_malformed
                or parsed.invoice_id is null
                or parsed.item_id is null
                or coalesce(parsed.quantity, 0) <= 0
                then 'invalid_value'
            when invoices.invoice_id is null then 'unknown_invoice'
            -- contract: a line naming no valid SKU is quarantined but still counts toward inv_items
            when skus.item_id is null then 'unknown_sku'
        end as reject_reason
    from parsed
    left join invoices
        on parsed.invoice_id = invoices.invoice_id
    left join skus
        on parsed.item_id = skus.item_id
),

final as (
    select
        classified.invoice_id as invoice_id,
        classified.item_id as item_id,
        classified.quantity as quantity,
        classified.reject_reason as reject_reason,
        classified.partition_month as partition_month,
        false as is_collapsed,
        -- the original values are kept for quarantined lines only: valid lines are most of the data
        case
            when classified.reject_reason is null then null
            when classified.is_malformed then to_json(named_struct('_corrupt_record', classified.corrupt_record))
            else
                to_json(
                    named_struct(
                        'invoice_id', classified.raw_invoice_id,
                        'item_id', classified.raw_item_id,
                        'quantity', classified.raw_quantity
                    ),
                    map('ignoreNullFields', 'false')
                )
        end as source_record
    from classified
)

select * from final
