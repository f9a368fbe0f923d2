-- The naive reference job (bench_jobs.naive_job): the assignment's features the way a one-query Spark job computes
-- them, over the four extracts read with a header and no schema (every column a string). Nothing is checked: a
-- line of an unknown SKU or an invoice of an unknown account drops out of the inner joins, duplicates are summed,
-- and an unpaid invoice is not late. Only its time is compared with the pipeline's (docs/benchmarks.md).
with invoice_totals as (
    select
        invoices.invoice_id,
        invoices.account_id,
        invoices.date_issued,
        invoices.payment_dates,
        accounts.joining_date,
        sum(invoice_line_items.quantity * skus.item_retail_price) as inv_total,
        sum(invoice_line_items.quantity) as inv_items
    from invoices
    inner join accounts on invoices.account_id = accounts.account_id
    inner join invoice_line_items on invoices.invoice_id = invoice_line_items.invoice_id
    inner join skus on invoice_line_items.item_id = skus.item_id
    group by
        invoices.invoice_id,
        invoices.account_id,
        invoices.date_issued,
        invoices.payment_dates,
        accounts.joining_date
),

final as (
    select
        invoice_id as inv_id,
        account_id as acct_id,
        inv_total,
        inv_items,
        datediff(date_issued, joining_date) as acct_age,
        count(*) over (
            partition by account_id
            order by datediff(date_issued, '1970-01-01')
            range between 120 preceding and current row
        ) as num_inv_120d,
        count(*) over (
            partition by account_id
            order by date_issued
            rows between unbounded preceding and current row
        ) as cum_tot_inv_acct,
        case when datediff(payment_dates, date_issued) > 30 then 1 else 0 end as is_late
    from invoice_totals
)

select * from final
