-- population.golden_values: one current statement's golden attributes as one composite value, in the order of
-- pipelines.population.attributes.GOLDEN_ATTRIBUTES and with the types of population.source_record's columns (a
-- test keeps the three in step).
--
-- Why: survivorship's golden query (pipelines.reconcile.survivorship.golden_query) gathered, per person, an array of
-- each attribute's values — eighteen array_agg() a person — and took each attribute's winner from its own array.
-- Gathered as one array of these values instead, a person's aggregate builds one array where it built eighteen:
-- the aggregate over one slice of a 1M load (949k statements) 2.7–3.9 → 1.7–2.2 s, the winners' fields taken out
-- of the composite costing 0.6 s more; the same golden rows (md5 of every row).
CREATE TYPE population.golden_values AS (
    name                    text,
    sex                     text,
    birth_date              date,
    ethnicity               text,
    nationality             text,
    hukou_division          text,
    hukou_address           text,
    residence_division      text,
    residence_address       text,
    residence_permit_no     text,
    population_status       text,
    death_date              date,
    marital_status          text,
    employer                text,
    employer_uscc           text,
    social_insurance_status text,
    education_level         text,
    school                  text
);
COMMENT ON TYPE population.golden_values IS
    '一条现行陈述的黄金属性值 (survivorship''s golden query gathers them per person in one array)';
