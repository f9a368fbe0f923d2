-- Grain: one row per issue month and monitored feature of fct_invoice_features. Counts, exact sums and a
-- histogram over fixed bins add up across months exactly, so a daily run recomputes only the months the marts
-- rewrote and the whole table's metrics are their sum (docs/design.md, "Watched runs").
with

features as (
    select inv_total, inv_items, acct_age, num_inv_120d, cum_tot_inv_acct, is_late, partition_month
    from fct_invoice_features
),

long_values as (
    select
        features.partition_month as partition_month,
        unpivoted.feature as feature,
        unpivoted.feature_value as feature_value
    from features
        lateral view stack(
            6,
            'inv_total', cast(features.inv_total as decimal(20, 2)),
            'inv_items', cast(features.inv_items as decimal(20, 2)),
            'acct_age', cast(features.acct_age as decimal(20, 2)),
            'num_inv_120d', cast(features.num_inv_120d as decimal(20, 2)),
            'cum_tot_inv_acct', cast(features.cum_tot_inv_acct as decimal(20, 2)),
            'is_late', cast(features.is_late as decimal(20, 2))
        ) unpivoted as feature, feature_value
),

binned as (
    select
        partition_month,
        feature,
        feature_value,
        -- fixed bins, the same in every run: bin b holds [2^(b/4) - 1, 2^((b+1)/4) - 1), bin 127 everything
        -- above; a negative value (a broken invariant) has bin -1; an unknown value none
        case
            when feature_value is null then null
            when feature_value < 0 then -1
            else least(cast(floor(log2(1 + cast(feature_value as double)) * 4) as int), 127)
        end as bin_number
    from long_values
),

per_bin as (
    select
        partition_month,
        feature,
        bin_number,
        count(*) as row_count,
        count(feature_value) as value_count,
        sum(feature_value) as value_sum,
        sum(feature_value * feature_value) as value_square_sum,
        min(feature_value) as min_value,
        max(feature_value) as max_value
    from binned
    group by partition_month, feature, bin_number
),

final as (
    select
        feature,
        sum(row_count) as row_count,
        sum(row_count) - sum(value_count) as null_count,
        cast(sum(value_sum) as decimal(38, 2)) as value_sum,
        cast(sum(value_square_sum) as decimal(38, 4)) as value_square_sum,
        min(min_value) as min_value,
        max(max_value) as max_value,
        map_from_entries(
            array_sort(collect_list(struct(bin_number, value_count)) filter (where bin_number is not null))
        ) as bin_counts,
        partition_month
    from per_bin
    group by partition_month, feature
)

select * from final
