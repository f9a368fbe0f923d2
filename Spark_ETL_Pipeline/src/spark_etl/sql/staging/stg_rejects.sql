-- Grain: one row per quarantined source record: its table, the first contract rule it breaks and its original
-- values as JSON. Nothing the pipeline cannot use disappears without a row here.
with

checked_rows as (
    select 'accounts' as table_name, reject_reason, source_record from stg_accounts_checked
    union all
    select 'skus' as table_name, reject_reason, source_record from stg_skus_checked
    union all
    select 'invoices' as table_name, reject_reason, source_record from stg_invoices_checked
    union all
    select 'invoice_line_items' as table_name, reject_reason, source_record from stg_invoice_line_items_checked
),

final as (
    select
        checked_rows.table_name as table_name,
        checked_rows.reject_reason as reject_reason,
        checked_rows.source_record as source_record
    from checked_rows
    where checked_rows.reject_reason is not null
)

select * from final
