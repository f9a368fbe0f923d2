-- Grain: one row per usable invoice (inv_id). The feature contract: the eight columns the data scientists
-- model on, plus issue_date and payment_date so a row can be explained (with int_as_of_date, the run's one
-- as_of). Stored in one folder per issue month: an incremental run recomputes only the months it changed.
with

invoices as (
    select invoice_id, account_id, issue_date, payment_date from stg_invoices
),

accounts as (
    select account_id, joining_date from stg_accounts
),

invoice_totals as (
    select invoice_id, invoice_total, item_count from int_invoice_totals
),

account_daily as (
    select account_id, issue_date, invoices_prior_120d, invoices_to_date from int_account_daily_invoices
),

as_of as (
    select as_of_date from int_as_of_date
),

joined as (
    select /*+ broadcast(accounts) */
        invoices.invoice_id as invoice_id,
        invoices.account_id as account_id,
        invoices.issue_date as issue_date,
        invoices.payment_date as payment_date,
        accounts.joining_date as joining_date,
        invoice_totals.invoice_total as invoice_total,
        invoice_totals.item_count as item_count,
        account_daily.invoices_prior_120d as invoices_prior_120d,
        account_daily.invoices_to_date as invoices_to_date
    from invoices
    left join accounts
        on invoices.account_id = accounts.account_id
    inner join invoice_totals
        on invoices.invoice_id = invoice_totals.invoice_id
    inner join account_daily
        on invoices.account_id = account_daily.account_id
        and invoices.issue_date = account_daily.issue_date
),

final as (
    select
        joined.invoice_id as inv_id,
        joined.account_id as acct_id,
        joined.invoice_total as inv_total,
        joined.item_count as inv_items,
        -- contract: whole days from joining to issue; unknown when the account is unknown or rejected
        datediff(joined.issue_date, joined.joining_date) as acct_age,
        joined.invoices_prior_120d as num_inv_120d,
        joined.invoices_to_date as cum_tot_inv_acct,
        -- contract: late means paid more than 30 days after issue; unpaid counts as late once as_of is past
        -- that, and is unknown before
        case
            when joined.payment_date is not null
                then if(datediff(joined.payment_date, joined.issue_date) > 30, 1, 0)
            when datediff((select as_of.as_of_date from as_of), joined.issue_date) > 30 then 1
        end as is_late,
        joined.issue_date as issue_date,
        joined.payment_date as payment_date,
        date_format(joined.issue_date, 'yyyy-MM') as partition_month
    from joined
)

select * from final
