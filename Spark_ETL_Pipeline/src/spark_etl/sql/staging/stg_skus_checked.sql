-- Grain: one row per record of skus.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks; stg_skus keeps the usable rows, stg_rejects the others.
with

raw_rows as (
    select * from raw_skus
),

parsed as (
    select
        nullif(trim(raw_rows.item_id), '') as item_id,
        raw_rows.item_name as item_name,
        raw_rows.item_description as item_description,
        -- contract: prices are non-negative decimals with at most 6 decimal places
        case
            when trim(raw_rows.item_cost_price) rlike '^[0-9]{1,15}([.][0-9]{1,6})?$'
                then cast(trim(raw_rows.item_cost_price) as decimal(21, 6))
        end as item_cost_price,
        case
            when trim(raw_rows.item_retail_price) rlike '^[0-9]{1,15}([.][0-9]{1,6})?$'
                then cast(trim(raw_rows.item_retail_price) as decimal(21, 6))
        end as item_retail_price,
        named_struct(
            'item_id', raw_rows.item_id,
            'item_name', raw_rows.item_name,
            'item_description', raw_rows.item_description,
            'item_cost_price', raw_rows.item_cost_price,
            'item_retail_price', raw_rows.item_retail_price
        ) as raw_record,
        raw_rows._corrupt_record as corrupt_record
    from raw_rows
),

validated as (
    select
        parsed.*,
        (
            parsed.corrupt_record is not null
            or parsed.item_id is null
            or parsed.item_cost_price is null
            or parsed.item_retail_price is null
        ) as is_invalid
    from parsed
),

keyed as (
    select
        validated.*,
        count(if(validated.is_invalid, null, 1)) over (partition by validated.item_id) as valid_copies,
        row_number() over (partition by validated.item_id order by validated.is_invalid) as copy_number
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
    window by_key as (partition by compared.item_id)
),

final as (
    select
        flagged.item_id as item_id,
        flagged.item_name as item_name,
        flagged.item_description as item_description,
        flagged.item_cost_price as item_cost_price,
        flagged.item_retail_price as item_retail_price,
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
