select
    coalesce(stg_skus.item_id, stored_stg_skus.item_id) as item_id,
    stg_skus.item_id is null or stored_stg_skus.item_id is null as is_added_or_removed
from stg_skus
full outer join stored_stg_skus
    on stg_skus.item_id = stored_stg_skus.item_id
where stg_skus.item_id is null
    or stored_stg_skus.item_id is null
    or stg_skus.item_retail_price <> stored_stg_skus.item_retail_price
