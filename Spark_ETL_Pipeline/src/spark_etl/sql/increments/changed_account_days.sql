with

moved as (
    -- a payment changes no day: only an invoice that is new, withdrawn, or on another account or day
    select
        changed_invoices.old_account_id as old_account_id,
        changed_invoices.old_issue_date as old_issue_date,
        changed_invoices.new_account_id as new_account_id,
        changed_invoices.new_issue_date as new_issue_date
    from changed_invoices
    where
        not (
            changed_invoices.old_account_id <=> changed_invoices.new_account_id
            and changed_invoices.old_issue_date <=> changed_invoices.new_issue_date
        )
),

days as (
    select moved.old_account_id as account_id, moved.old_issue_date as issue_date from moved
    where moved.old_issue_date is not null
    union all
    select moved.new_account_id as account_id, moved.new_issue_date as issue_date from moved
    where moved.new_issue_date is not null
)

select distinct days.account_id as account_id, days.issue_date as issue_date from days
