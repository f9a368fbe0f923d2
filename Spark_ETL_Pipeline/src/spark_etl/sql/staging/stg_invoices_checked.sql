-- Grain: one row per record of invoices.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks (the duplicate-key rule is shared: sql/shared/duplicate_key_rule.sql); stg_invoices
-- keeps the usable rows, stg_rejects the others.
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
        parsed.invoice_id as record_key,
        (
            parsed.corrupt_record is not null
            or parsed.invoice_id is null
            or parsed.account_id is null
            or parsed.issue_date is null
            or (parsed.has_payment_value and parsed.payment_date is null)
        ) as is_invalid
    from parsed
),

{% include "duplicate_key_rule.sql" %}

final as (
    select
        outcome.invoice_id as invoice_id,
        outcome.account_id as account_id,
        outcome.issue_date as issue_date,
        outcome.payment_date as payment_date,
        outcome.reject_reason as reject_reason,
        outcome.is_collapsed as is_collapsed,
        outcome.source_record as source_record
    from outcome
)

select * from final
