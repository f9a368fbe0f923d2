-- Grain: one row per record of invoices.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks; stg_invoices keeps the usable rows, stg_rejects the others.
with

raw_rows as (
    select * from raw_invoices
),

parsed as (
    select
        -- contract: ids are 1 to 18 digits after trimming spaces
        case
            when trim(raw_rows.invoice_id) rlike '^[0-9]{1,18}$' then cast(trim(raw_rows.invoice_id) as bigint)
        end as invoice_id,
        case
            when trim(raw_rows.account_id) rlike '^[0-9]{1,18}$' then cast(trim(raw_rows.account_id) as bigint)
        end as account_id,
        -- contract: dates are yyyy-MM-dd and must exist in the calendar
        case
            when trim(raw_rows.date_issued) rlike '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                then try_cast(trim(raw_rows.date_issued) as date)
        end as issue_date,
        case
            when trim(raw_rows.payment_dates) rlike '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                then try_cast(trim(raw_rows.payment_dates) as date)
        end as payment_date,
        -- contract: an empty payment_dates means unpaid, anything else must be a date
        coalesce(trim(raw_rows.payment_dates), '') <> '' as has_payment_value,
        named_struct(
            'invoice_id', raw_rows.invoice_id,
            'account_id', raw_rows.account_id,
            'date_issued', raw_rows.date_issued,
            'payment_dates', raw_rows.payment_dates
        ) as raw_record,
        raw_rows._corrupt_record as corrupt_record
    from raw_rows
),

validated as (
    select
        parsed.*,
        (
            parsed.corrupt_record is not null
            or parsed.invoice_id is null
            or parsed.account_id is null
            or parsed.issue_date is null
            or (parsed.has_payment_value and parsed.payment_date is null)
        ) as is_invalid
    from parsed
),

keyed as (
    select
        validated.*,
        count(if(validated.is_invalid, null, 1)) over (partition by validated.invoice_id) as valid_copies,
        row_number() over (partition by validated.invoice_id order by validated.is_invalid) as copy_number
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
    window by_key as (partition by compared.invoice_id)
),

final as (
    select
        flagged.invoice_id as invoice_id,
        flagged.account_id as account_id,
        flagged.issue_date as issue_date,
        flagged.payment_date as payment_date,
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
