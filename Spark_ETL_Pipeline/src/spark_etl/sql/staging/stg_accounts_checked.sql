-- Grain: one row per record of accounts.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks (the duplicate-key rule is shared: sql/shared/duplicate_key_rule.sql); stg_accounts
-- keeps the usable rows, stg_rejects the others.
with

raw_rows as (
    select * from raw_accounts
),

parsed as (
    select
        -- contract: ids are 1 to 18 digits after trimming spaces
        case
            when trim(raw_rows.account_id) rlike '^[0-9]{1,18}$' then cast(trim(raw_rows.account_id) as bigint)
        end as account_id,
        raw_rows.company_name as company_name,
        raw_rows.company_address as company_address,
        raw_rows.contact_person as contact_person,
        raw_rows.contact_phone as contact_phone,
        raw_rows.gender as gender,
        -- contract: dates are yyyy-MM-dd and must exist in the calendar
        case
            when trim(raw_rows.joining_date) rlike '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                then try_cast(trim(raw_rows.joining_date) as date)
        end as joining_date,
        named_struct(
            'account_id', raw_rows.account_id,
            'company_name', raw_rows.company_name,
            'company_address', raw_rows.company_address,
            'contact_person', raw_rows.contact_person,
            'contact_phone', raw_rows.contact_phone,
            'gender', raw_rows.gender,
            'joining_date', raw_rows.joining_date
        ) as raw_record,
        raw_rows._corrupt_record as corrupt_record
    from raw_rows
),

validated as (
    select
        parsed.*,
        parsed.account_id as record_key,
        (
            parsed.corrupt_record is not null
            or parsed.account_id is null
            or parsed.joining_date is null
        ) as is_invalid
    from parsed
),

{% include "duplicate_key_rule.sql" %}

final as (
    select
        outcome.account_id as account_id,
        outcome.company_name as company_name,
        outcome.company_address as company_address,
        outcome.contact_person as contact_person,
        outcome.contact_phone as contact_phone,
        outcome.gender as gender,
        outcome.joining_date as joining_date,
        outcome.reject_reason as reject_reason,
        outcome.is_collapsed as is_collapsed,
        outcome.source_record as source_record
    from outcome
)

select * from final
