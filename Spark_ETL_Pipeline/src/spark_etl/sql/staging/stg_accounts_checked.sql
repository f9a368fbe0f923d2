-- Grain: one row per record of accounts.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks; stg_accounts keeps the usable rows, stg_rejects the others.
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
        (
            parsed.corrupt_record is not null
            or parsed.account_id is null
            or parsed.joining_date is null
        ) as is_invalid
    from parsed
),

keyed as (
    select
        validated.*,
        count(if(validated.is_invalid, null, 1)) over (partition by validated.account_id) as valid_copies,
        row_number() over (partition by validated.account_id order by validated.is_invalid) as copy_number
    from validated
),

compared as (
    select
        keyed.*,
        -- content is only compared where a key has several valid copies, which is rare
        if(
            keyed.valid_copies > 1 and not keyed.is_invalid,
            to_json(keyed.raw_record, map('ignoreNullFields', 'false')),
            null
        ) as row_content
    from keyed
),

flagged as (
    select
        compared.*,
        case
            when compared.is_invalid then 'invalid_value'
            -- contract: a key whose valid copies differ in content rejects every copy
            when min(compared.row_content) over by_key <> max(compared.row_content) over by_key
                then 'duplicate_conflict'
        end as reject_reason
    from compared
    window by_key as (partition by compared.account_id)
),

final as (
    select
        flagged.account_id as account_id,
        flagged.company_name as company_name,
        flagged.company_address as company_address,
        flagged.contact_person as contact_person,
        flagged.contact_phone as contact_phone,
        flagged.gender as gender,
        flagged.joining_date as joining_date,
        flagged.reject_reason as reject_reason,
        -- contract: exact copies of a key collapse to one row, counted
        (flagged.reject_reason is null and flagged.copy_number > 1) as is_collapsed,
        -- the original values are kept for quarantined records only
        case
            when flagged.reject_reason is null then null
            when flagged.corrupt_record is not null
                then to_json(named_struct('_corrupt_record', flagged.corrupt_record))
            else to_json(flagged.raw_record, map('ignoreNullFields', 'false'))
        end as source_record
    from flagged
)

select * from final
