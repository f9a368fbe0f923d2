-- Grain: one row per (account_id, issue_date) with at least one usable invoice. Windowing this daily series
-- instead of every invoice makes same-day invoices tie by construction and bounds the work per account by
-- its number of distinct days. Stored in one folder per issue month (partition_month). An incremental run
-- recomputes only the accounts whose days changed, from their whole history (stg_invoices is narrowed to them),
-- and keeps the other accounts' stored rows of the months it rewrites (stored_int_account_daily_invoices, narrowed
-- to them); in a full run that is empty and stg_invoices whole.
with

invoices as (
    select account_id, issue_date from stg_invoices
),

stored as (
    select
        account_id,
        issue_date,
        invoice_count,
        invoices_prior_120d,
        invoices_to_date,
        partition_month
    from stored_int_account_daily_invoices
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

recomputed as (
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
        ) as invoices_to_date,
        date_format(daily.issue_date, 'yyyy-MM') as partition_month
    from daily
),

final as (
    select * from recomputed
    union all
    select * from stored
)

select * from final
