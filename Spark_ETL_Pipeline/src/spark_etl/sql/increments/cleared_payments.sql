-- The invoices of the months a run rewrote whose payment date the version it builds on holds and this run's does
-- not. A payment does not un-happen: a cleared date is a reversal or a source fault. An invoice paid late and
-- cleared stays late (unpaid and over 30 days old), so none of its features moves and no drift check can see it:
-- this comparison is what the cleared_payments check judges (monitoring/checks.py).
with

run_rows as (
    select inv_id, payment_date from fct_invoice_features
),

base_rows as (
    select inv_id, payment_date from stored_fct_invoice_features
),

final as (
    select
        run_rows.inv_id as inv_id,
        base_rows.payment_date as base_payment_date
    from run_rows
    inner join base_rows
        on run_rows.inv_id = base_rows.inv_id
    where base_rows.payment_date is not null
        and run_rows.payment_date is null
)

select * from final
