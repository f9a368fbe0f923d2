-- Grain: one row per account_id. The usable accounts: valid, unconflicted, exact copies collapsed.
with

checked as (
    select * from stg_accounts_checked
),

final as (
    select
        checked.account_id as account_id,
        checked.company_name as company_name,
        checked.company_address as company_address,
        checked.contact_person as contact_person,
        checked.contact_phone as contact_phone,
        checked.gender as gender,
        checked.joining_date as joining_date
    from checked
    where checked.reject_reason is null
        and not checked.is_collapsed
)

select * from final
