-- Grain: one row per item_id. The usable SKUs: valid, unconflicted, exact copies collapsed.
with

checked as (
    select * from stg_skus_checked
),

final as (
    select
        checked.item_id as item_id,
        checked.item_name as item_name,
        checked.item_description as item_description,
        checked.item_cost_price as item_cost_price,
        checked.item_retail_price as item_retail_price
    from checked
    where checked.reject_reason is null
        and not checked.is_collapsed
)

select * from final
