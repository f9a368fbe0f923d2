-- Grain: one row per item_id. The usable SKUs: valid, unconflicted, exact copies collapsed.
-- In an incremental run, the delta's accepted rows merged into the previous version (stored_stg_skus);
-- in a full run that is empty. From the database, the keys the source deleted or changed
-- (withdrawn_skus) lose their stored row too; on the CSV path and in a full run there are none.
with

checked as (
    select * from stg_skus_checked
),

stored as (
    select item_id, item_name, item_description, item_cost_price, item_retail_price from stored_stg_skus
),

withdrawn as (
    select item_id from withdrawn_skus
),

accepted as (
    select
        checked.item_id as item_id,
        checked.item_name as item_name,
        checked.item_description as item_description,
        checked.item_cost_price as item_cost_price,
        checked.item_retail_price as item_retail_price
    from checked
    where checked.reject_reason is null
        and not checked.is_collapsed
),

kept_stored as (
    -- merge rule: an accepted delta row replaces the stored row with its key; a rejected one replaces nothing
    -- (from the database, a withdrawn key's stored row goes even then: a full run would reject the key too)
    select
        stored.item_id as item_id,
        stored.item_name as item_name,
        stored.item_description as item_description,
        stored.item_cost_price as item_cost_price,
        stored.item_retail_price as item_retail_price
    from stored
    left anti join accepted
        on stored.item_id = accepted.item_id
    left anti join withdrawn
        on stored.item_id = withdrawn.item_id
),

final as (
    select * from accepted
    union all
    select * from kept_stored
)

select * from final
