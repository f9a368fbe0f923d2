with

delta_lines as (
    -- an invoice whose lines the delta replaces
    select stg_invoice_line_items_checked.partition_month as month
    from stg_invoice_line_items_checked
    where stg_invoice_line_items_checked.reject_reason is null
        or stg_invoice_line_items_checked.reject_reason = 'unknown_sku'
),

moved as (
    -- an invoice moved to another month or withdrawn: its lines leave the month they were in, and follow it
    select
        date_format(changed_invoices.old_issue_date, 'yyyy-MM') as old_month,
        date_format(changed_invoices.new_issue_date, 'yyyy-MM') as new_month
    from changed_invoices
    where changed_invoices.old_issue_date is not null
        and not date_format(changed_invoices.old_issue_date, 'yyyy-MM')
        <=> date_format(changed_invoices.new_issue_date, 'yyyy-MM')
),

withdrawn_lines as (
    -- from the database: an invoice whose lines were changed or all deleted
    select /*+ broadcast(withdrawn_invoice_line_items) */
        date_format(stored_stg_invoices.issue_date, 'yyyy-MM') as month
    from stored_stg_invoices
    inner join withdrawn_invoice_line_items
        on stored_stg_invoices.invoice_id = withdrawn_invoice_line_items.invoice_id
),

months as (
    select delta_lines.month as month from delta_lines
    union all
    select moved.old_month as month from moved
    union all
    select moved.new_month as month from moved
    union all
    select withdrawn_lines.month as month from withdrawn_lines
)

select distinct months.month as month
from months
where months.month is not null
