with

delta_invoices as (
    select invoice_id, account_id, issue_date from stg_invoices_checked
    where reject_reason is null and not is_collapsed
),

gone_invoices as (
    select withdrawn_invoices.invoice_id as invoice_id
    from withdrawn_invoices
    left anti join delta_invoices
        on withdrawn_invoices.invoice_id = delta_invoices.invoice_id
),

changed_keys as (
    select delta_invoices.invoice_id as invoice_id from delta_invoices
    union all
    select gone_invoices.invoice_id as invoice_id from gone_invoices
),

stored as (
    -- the few changed keys are broadcast over the stored rows: no shuffle of the stored invoices
    select /*+ broadcast(changed_keys) */
        stored_stg_invoices.invoice_id as invoice_id,
        stored_stg_invoices.account_id as account_id,
        stored_stg_invoices.issue_date as issue_date
    from stored_stg_invoices
    inner join changed_keys
        on stored_stg_invoices.invoice_id = changed_keys.invoice_id
),

final as (
    select
        delta_invoices.invoice_id as invoice_id,
        stored.account_id as old_account_id,
        stored.issue_date as old_issue_date,
        delta_invoices.account_id as new_account_id,
        delta_invoices.issue_date as new_issue_date
    from delta_invoices
    left join stored
        on delta_invoices.invoice_id = stored.invoice_id
    union all
    select
        gone_invoices.invoice_id as invoice_id,
        stored.account_id as old_account_id,
        stored.issue_date as old_issue_date,
        cast(null as bigint) as new_account_id,
        cast(null as date) as new_issue_date
    from gone_invoices
    inner join stored
        on gone_invoices.invoice_id = stored.invoice_id
)

select * from final
