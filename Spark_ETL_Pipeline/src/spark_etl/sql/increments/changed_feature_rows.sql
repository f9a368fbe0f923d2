-- The feature rows a run added or changed: those of the months it rewrote that the version it builds on does not
-- hold as they are now (every column of the contract compared, an unknown value equal to an unknown value). The
-- population a day's drift checks judge (monitoring/checks.py).
select
    features.inv_id,
    features.acct_id,
    features.inv_total,
    features.inv_items,
    features.acct_age,
    features.num_inv_120d,
    features.cum_tot_inv_acct,
    features.is_late,
    features.issue_date,
    features.payment_date,
    features.partition_month
from fct_invoice_features as features
left anti join stored_fct_invoice_features as base_rows
    on features.inv_id = base_rows.inv_id
    and features.acct_id <=> base_rows.acct_id
    and features.inv_total <=> base_rows.inv_total
    and features.inv_items <=> base_rows.inv_items
    and features.acct_age <=> base_rows.acct_age
    and features.num_inv_120d <=> base_rows.num_inv_120d
    and features.cum_tot_inv_acct <=> base_rows.cum_tot_inv_acct
    and features.is_late <=> base_rows.is_late
