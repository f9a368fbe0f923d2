select distinct date_format(changed_invoices.new_issue_date, 'yyyy-MM') as month
from changed_invoices
where changed_invoices.old_issue_date is null and changed_invoices.new_issue_date is not null
