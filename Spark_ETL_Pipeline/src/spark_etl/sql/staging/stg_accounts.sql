-- Grain: one row per account_id. The usable accounts: valid, unconflicted, exact copies collapsed.
-- In an incremental run, the delta's accepted rows merged into the previous version (stored_stg_accounts);
-- in a full run that is empty. From the database, the keys the source deleted or changed
-- (withdrawn_accounts) lose their stored row too; on the CSV path and in a full run there are none.
with

checked as (
    select * from stg_accounts_checked
),

stored as (
    select account_id, company_name, company_address, contact_person, contact_phone, gender, joining_date
    from stored_stg_accounts
),

withdrawn as (
    select account_id from withdrawn_accounts
),

accepted as (
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
),

kept_stored as (
    -- merge rule: an accepted delta row replaces the stored row with its key; a rejected one replaces nothing
    -- (from the database, a withdrawn key's stored row goes even then: a full run would reject the key too)
    select
        stored.account_id as account_id,
        stored.company_name as company_name,
        stored.company_address as company_address,
        stored.contact_person as contact_person,
        stored.contact_phone as contact_phone,
        stored.gender as gender,
        stored.joining_date as joining_date
    from stored
    left anti join accepted
        on stored.account_id = accepted.account_id
    left anti join withdrawn
        on stored.account_id = withdrawn.account_id
),

final as (
    select * from accepted
    union all
    select * from kept_stored
)

select * from final
