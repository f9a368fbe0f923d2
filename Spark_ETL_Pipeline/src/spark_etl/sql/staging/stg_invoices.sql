-- Grain: one row per invoice_id. The usable invoices: valid, unconflicted, exact copies collapsed. An invoice
-- whose account is unknown stays (its acct_age is unknown, the rest of its features are not).
with

checked as (
    select * from stg_invoices_checked
),

final as (
    select
        checked.invoice_id as invoice_id,
        checked.account_id as account_id,
        checked.issue_date as issue_date,
        checked.payment_date as payment_date
    from checked
    where checked.reject_reason is null
        and not checked.is_collapsed
)

select * from final
