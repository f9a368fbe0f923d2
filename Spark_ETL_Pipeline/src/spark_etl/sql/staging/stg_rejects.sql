-- Grain: one row per quarantined source record: its table, the first contract rule it breaks and its original
-- values as JSON. Nothing the pipeline cannot use disappears without a row here.
with

checked_rows as (
    select * from stg_checked_rows
),

final as (
    select
        checked_rows.table_name as table_name,
        checked_rows.reject_reason as reject_reason,
        checked_rows.source_record as source_record
    from checked_rows
    where checked_rows.reject_reason is not null
)

select * from final
