-- Grain: one row per (account_id, issue_date) with at least one usable invoice. Windowing this daily series
-- instead of every invoice makes same-day invoices tie by construction and bounds the work per account by
-- its number of distinct days.
with

invoices as (
    select account_id, issue_date from stg_invoices
),

daily as (
    select
        invoices.account_id as account_id,
        invoices.issue_date as issue_date,
        unix_date(invoices.issue_date) as issue_day_number,
        count(*) as invoice_count
    from invoices
    group by invoices.account_id, invoices.issue_date
),

final as (
    select
        daily.account_id as account_id,
        daily.issue_date as issue_date,
        daily.invoice_count as invoice_count,
        -- contract: prior-only window [d - 120, d - 1]; the invoice's own day never counts
        coalesce(
            sum(daily.invoice_count) over (
                partition by daily.account_id
                order by daily.issue_day_number
                range between 120 preceding and 1 preceding
            ),
            0
        ) as invoices_prior_120d,
        -- contract: every invoice issued up to and including day d, the invoice itself and same-day ones
        sum(daily.invoice_count) over (
            partition by daily.account_id
            order by daily.issue_day_number
            range between unbounded preceding and current row
        ) as invoices_to_date
    from daily
)

select * from final
