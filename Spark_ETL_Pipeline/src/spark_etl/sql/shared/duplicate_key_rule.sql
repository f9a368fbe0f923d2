-- The duplicate-key rule of the keyed *_checked models (accounts, skus, invoices), written once. A model includes
-- it with a Jinja include line naming this file (models.sql_text renders it), after a `validated` CTE with one row
-- per source record and the columns record_key (the typed key), is_invalid, raw_record (the raw values as a
-- struct) and corrupt_record. Adds reject_reason, is_collapsed and source_record in CTE `outcome`.
keyed as (
    select
        validated.*,
        count(if(validated.is_invalid, null, 1)) over (partition by validated.record_key) as valid_copies,
        row_number() over (partition by validated.record_key order by validated.is_invalid) as copy_number
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
    window by_key as (partition by compared.record_key)
),

outcome as (
    select
        flagged.*,
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
),
