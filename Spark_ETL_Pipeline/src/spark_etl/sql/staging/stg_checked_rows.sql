-- Grain: one row per record of any of the four extracts, with its outcome: the shared input of stg_rejects
-- and stg_row_counts, so both see exactly the same records.
with

final as (
    select 'accounts' as table_name, reject_reason, is_collapsed, source_record from stg_accounts_checked
    union all
    select 'skus' as table_name, reject_reason, is_collapsed, source_record from stg_skus_checked
    union all
    select 'invoices' as table_name, reject_reason, is_collapsed, source_record from stg_invoices_checked
    union all
    select
        'invoice_line_items' as table_name, reject_reason, is_collapsed, source_record
    from stg_invoice_line_items_checked
)

select * from final
