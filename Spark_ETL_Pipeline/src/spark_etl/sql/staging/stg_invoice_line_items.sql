-- Grain: one row per line of a usable invoice (no key: identical lines are separate lines). Lines naming an
-- unknown SKU are here too, flagged, because the contract counts them toward inv_items; they are also in
-- stg_rejects. Stored in one folder per issue month of the line's invoice (partition_month). In an incremental
-- run, the delta's lines merged into the previous version's (stored_stg_invoice_line_items, only the months the
-- run rewrites); in a full run that is empty. From the database, an invoice whose lines the source changed or
-- deleted (withdrawn_invoice_line_items) loses its stored lines too; on the CSV path there are none.
with

checked as (
    select * from stg_invoice_line_items_checked
),

stored as (
    select invoice_id, item_id, quantity from stored_stg_invoice_line_items
),

withdrawn as (
    select invoice_id from withdrawn_invoice_line_items
),

invoices as (
    select invoice_id, issue_date from stg_invoices
),

skus as (
    select item_id from stg_skus
),

delta_lines as (
    select
        checked.invoice_id as invoice_id,
        checked.item_id as item_id,
        checked.quantity as quantity,
        checked.reject_reason is null as is_known_sku,
        checked.partition_month as partition_month
    from checked
    where checked.reject_reason is null
        or checked.reject_reason = 'unknown_sku'
),

replaced_invoices as (
    select distinct delta_lines.invoice_id as invoice_id
    from delta_lines
),

kept_stored as (
    -- merge rule: the delta's lines of an invoice replace all of its stored lines; others keep theirs, except an
    -- invoice whose lines the source withdrew (from the database: changed, or all deleted), which keeps none
    select
        stored.invoice_id as invoice_id,
        stored.item_id as item_id,
        stored.quantity as quantity
    from stored
    left anti join replaced_invoices
        on stored.invoice_id = replaced_invoices.invoice_id
    left anti join withdrawn
        on stored.invoice_id = withdrawn.invoice_id
),

stored_lines as (
    -- a stored line is judged again against today's SKUs and filed under its invoice's current issue month; the
    -- lines of an invoice that no longer exists go with it
    select /*+ broadcast(skus) */
        kept_stored.invoice_id as invoice_id,
        kept_stored.item_id as item_id,
        kept_stored.quantity as quantity,
        skus.item_id is not null as is_known_sku,
        date_format(invoices.issue_date, 'yyyy-MM') as partition_month
    from kept_stored
    inner join invoices
        on kept_stored.invoice_id = invoices.invoice_id
    left join skus
        on kept_stored.item_id = skus.item_id
),

final as (
    select * from delta_lines
    union all
    select * from stored_lines
)

select * from final
