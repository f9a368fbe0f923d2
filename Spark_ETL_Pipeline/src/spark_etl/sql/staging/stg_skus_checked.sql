-- Grain: one row per record of skus.csv (nothing dropped). Types each field and names the first rule of the
-- contract the record breaks (the duplicate-key rule is shared: sql/shared/duplicate_key_rule.sql); stg_skus keeps
-- the usable rows, stg_rejects the others.
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
        parsed.item_id as record_key,
        (
            parsed.corrupt_record is not null
            or parsed.item_id is null
            or parsed.item_cost_price is null
            or parsed.item_retail_price is null
        ) as is_invalid
    from parsed
),

{% include "duplicate_key_rule.sql" %}

final as (
    select
        outcome.item_id as item_id,
        outcome.item_name as item_name,
        outcome.item_description as item_description,
        outcome.item_cost_price as item_cost_price,
        outcome.item_retail_price as item_retail_price,
        outcome.reject_reason as reject_reason,
        outcome.is_collapsed as is_collapsed,
        outcome.source_record as source_record
    from outcome
)

select * from final
