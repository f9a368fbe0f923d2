-- Grain: one row per line of a usable invoice (no key: identical lines are separate lines). Lines naming an
-- unknown SKU are here too, flagged, because the contract counts them toward inv_items; they are also in
-- stg_rejects.
with

checked as (
    select * from stg_invoice_line_items_checked
),

final as (
    select
        checked.invoice_id as invoice_id,
        checked.item_id as item_id,
        checked.quantity as quantity,
        checked.reject_reason is null as is_known_sku
    from checked
    where checked.reject_reason is null
        or checked.reject_reason = 'unknown_sku'
)

select * from final
