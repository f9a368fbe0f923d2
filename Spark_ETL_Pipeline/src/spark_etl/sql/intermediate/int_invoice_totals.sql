-- Grain: one row per usable invoice (stg_invoices.invoice_id). Money and item counts from its lines. Stored in
-- one folder per issue month, so a run recomputes only the months whose invoices, lines or prices changed.
with

invoices as (
    select invoice_id, issue_date from stg_invoices
),

lines as (
    select invoice_id, item_id, quantity, is_known_sku from stg_invoice_line_items
),

skus as (
    select item_id, item_retail_price from stg_skus
),

priced_lines as (
    select /*+ broadcast(skus) */
        lines.invoice_id as invoice_id,
        lines.quantity as quantity,
        lines.is_known_sku as is_known_sku,
        -- exact decimal: decimal(10, 0) x decimal(21, 6) is decimal(32, 6), no rounding until the total
        cast(lines.quantity as decimal(10, 0)) * skus.item_retail_price as line_amount
    from lines
    left join skus
        on lines.item_id = skus.item_id
),

line_totals as (
    select
        priced_lines.invoice_id as invoice_id,
        count(*) as line_count,
        sum(priced_lines.quantity) as item_count,
        count_if(not priced_lines.is_known_sku) as unknown_sku_line_count,
        sum(priced_lines.line_amount) as line_amount_total
    from priced_lines
    group by priced_lines.invoice_id
),

final as (
    select
        invoices.invoice_id as invoice_id,
        coalesce(line_totals.line_count, 0) as line_count,
        -- contract: lines naming an unknown SKU still count toward the items
        coalesce(line_totals.item_count, 0) as item_count,
        coalesce(line_totals.unknown_sku_line_count, 0) as unknown_sku_line_count,
        -- contract: half-up to cents; 0.00 without lines; unknown when any line names an unknown SKU
        case
            when coalesce(line_totals.unknown_sku_line_count, 0) = 0
                then cast(round(coalesce(line_totals.line_amount_total, 0), 2) as decimal(38, 2))
        end as invoice_total,
        -- the folder the row is stored in, as for the invoice's lines
        date_format(invoices.issue_date, 'yyyy-MM') as partition_month
    from invoices
    left join line_totals
        on invoices.invoice_id = line_totals.invoice_id
)

select * from final
