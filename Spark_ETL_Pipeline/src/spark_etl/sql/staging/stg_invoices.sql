-- Grain: one row per invoice_id. The usable invoices: valid, unconflicted, exact copies collapsed. An invoice
-- whose account is unknown stays (its acct_age is unknown, the rest of its features are not).
-- In an incremental run, the delta's accepted rows merged into the previous version (stored_stg_invoices, only
-- the issue months of the invoices the delta changes: every other month is kept); in a full run that is empty.
-- From the database, the keys the source deleted or changed (withdrawn_invoices) lose their stored row too; on
-- the CSV path and in a full run there are none.
with

checked as (
    select * from stg_invoices_checked
),

stored as (
    select invoice_id, account_id, issue_date, payment_date from stored_stg_invoices
),

withdrawn as (
    select invoice_id from withdrawn_invoices
),

accepted as (
    select
        checked.invoice_id as invoice_id,
        checked.account_id as account_id,
        checked.issue_date as issue_date,
        checked.payment_date as payment_date
    from checked
    where checked.reject_reason is null
        and not checked.is_collapsed
),

kept_stored as (
    -- merge rule: an accepted delta row replaces the stored row with its key; a rejected one replaces nothing
    -- (from the database, a withdrawn key's stored row goes even then: a full run would reject the key too)
    select
        stored.invoice_id as invoice_id,
        stored.account_id as account_id,
        stored.issue_date as issue_date,
        stored.payment_date as payment_date
    from stored
    left anti join accepted
        on stored.invoice_id = accepted.invoice_id
    left anti join withdrawn
        on stored.invoice_id = withdrawn.invoice_id
),

merged as (
    select * from accepted
    union all
    select * from kept_stored
),

final as (
    select
        merged.invoice_id as invoice_id,
        merged.account_id as account_id,
        merged.issue_date as issue_date,
        merged.payment_date as payment_date,
        -- the folder the invoice is stored in: its issue month (a day's payments touch a few recent months)
        date_format(merged.issue_date, 'yyyy-MM') as partition_month
    from merged
)

select * from final
