-- Grain: exactly one row: the date unpaid invoices are judged at. The run's --as-of when given, else the
-- latest date the usable invoices mention (issued or paid), so a rerun on the same extracts is reproducible.
with

run_parameters as (
    select as_of_date from run_parameters
),

invoices as (
    select issue_date, payment_date from stg_invoices
),

observed as (
    select max(greatest(invoices.issue_date, coalesce(invoices.payment_date, invoices.issue_date))) as latest_date
    from invoices
),

final as (
    select
        coalesce((select run_parameters.as_of_date from run_parameters), observed.latest_date) as as_of_date,
        (select run_parameters.as_of_date from run_parameters) is not null as is_as_of_given,
        observed.latest_date as latest_data_date
    from observed
)

select * from final
