-- Grain: one row per (table_name, row_status, reject_reason): how every record read was accounted for.
-- row_status is kept, collapsed (an exact copy of a kept key) or rejected (with its reason).
with

checked_rows as (
    select * from stg_checked_rows
),

classified as (
    select
        checked_rows.table_name as table_name,
        case
            when checked_rows.reject_reason is not null then 'rejected'
            when checked_rows.is_collapsed then 'collapsed'
            else 'kept'
        end as row_status,
        checked_rows.reject_reason as reject_reason
    from checked_rows
),

final as (
    select
        classified.table_name as table_name,
        classified.row_status as row_status,
        classified.reject_reason as reject_reason,
        count(*) as row_count
    from classified
    group by classified.table_name, classified.row_status, classified.reject_reason
)

select * from final
