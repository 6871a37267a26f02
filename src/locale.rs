//! Language tags (`fr`, `fr-CA`, `az`, `ru`, `ar`, `sr-Latn`) → the locale chrono formats
//! dates in. Every locale chrono ships (glibc's list, through `unstable-locales`) is reachable;
//! a language it does not have is an error, never English in disguise.

use chrono::Locale;

/// Every locale name chrono knows (`pure-rust-locales` 0.8, glibc's list), so that a language
/// without a region can find one of its locales.
const CHRONO_LOCALES: &[&str] = &[
    "aa_DJ",
    "aa_ER",
    "aa_ER@saaho",
    "aa_ET",
    "af_ZA",
    "agr_PE",
    "ak_GH",
    "am_ET",
    "an_ES",
    "anp_IN",
    "ar_AE",
    "ar_BH",
    "ar_DZ",
    "ar_EG",
    "ar_IN",
    "ar_IQ",
    "ar_JO",
    "ar_KW",
    "ar_LB",
    "ar_LY",
    "ar_MA",
    "ar_OM",
    "ar_QA",
    "ar_SA",
    "ar_SD",
    "ar_SS",
    "ar_SY",
    "ar_TN",
    "ar_YE",
    "as_IN",
    "ast_ES",
    "ayc_PE",
    "az_AZ",
    "az_IR",
    "be_BY",
    "be_BY@latin",
    "bem_ZM",
    "ber_DZ",
    "ber_MA",
    "bg_BG",
    "bhb_IN",
    "bho_IN",
    "bho_NP",
    "bi_VU",
    "bn_BD",
    "bn_IN",
    "bo_CN",
    "bo_IN",
    "br_FR",
    "br_FR@euro",
    "brx_IN",
    "bs_BA",
    "byn_ER",
    "ca_AD",
    "ca_ES",
    "ca_ES@euro",
    "ca_ES@valencia",
    "ca_FR",
    "ca_IT",
    "ce_RU",
    "chr_US",
    "cmn_TW",
    "crh_UA",
    "cs_CZ",
    "csb_PL",
    "cv_RU",
    "cy_GB",
    "da_DK",
    "de_AT",
    "de_AT@euro",
    "de_BE",
    "de_BE@euro",
    "de_CH",
    "de_DE",
    "de_DE@euro",
    "de_IT",
    "de_LI",
    "de_LU",
    "de_LU@euro",
    "doi_IN",
    "dsb_DE",
    "dv_MV",
    "dz_BT",
    "el_CY",
    "el_GR",
    "el_GR@euro",
    "en_AG",
    "en_AU",
    "en_BW",
    "en_CA",
    "en_DK",
    "en_GB",
    "en_HK",
    "en_IE",
    "en_IE@euro",
    "en_IL",
    "en_IN",
    "en_NG",
    "en_NZ",
    "en_PH",
    "en_SC",
    "en_SG",
    "en_US",
    "en_ZA",
    "en_ZM",
    "en_ZW",
    "eo",
    "es_AR",
    "es_BO",
    "es_CL",
    "es_CO",
    "es_CR",
    "es_CU",
    "es_DO",
    "es_EC",
    "es_ES",
    "es_ES@euro",
    "es_GT",
    "es_HN",
    "es_MX",
    "es_NI",
    "es_PA",
    "es_PE",
    "es_PR",
    "es_PY",
    "es_SV",
    "es_US",
    "es_UY",
    "es_VE",
    "et_EE",
    "eu_ES",
    "eu_ES@euro",
    "fa_IR",
    "ff_SN",
    "fi_FI",
    "fi_FI@euro",
    "fil_PH",
    "fo_FO",
    "fr_BE",
    "fr_BE@euro",
    "fr_CA",
    "fr_CH",
    "fr_FR",
    "fr_FR@euro",
    "fr_LU",
    "fr_LU@euro",
    "fur_IT",
    "fy_DE",
    "fy_NL",
    "ga_IE",
    "ga_IE@euro",
    "gd_GB",
    "gez_ER",
    "gez_ER@abegede",
    "gez_ET",
    "gez_ET@abegede",
    "gl_ES",
    "gl_ES@euro",
    "gu_IN",
    "gv_GB",
    "ha_NG",
    "hak_TW",
    "he_IL",
    "hi_IN",
    "hif_FJ",
    "hne_IN",
    "hr_HR",
    "hsb_DE",
    "ht_HT",
    "hu_HU",
    "hy_AM",
    "ia_FR",
    "id_ID",
    "ig_NG",
    "ik_CA",
    "is_IS",
    "it_CH",
    "it_IT",
    "it_IT@euro",
    "iu_CA",
    "ja_JP",
    "ka_GE",
    "kab_DZ",
    "kk_KZ",
    "kl_GL",
    "km_KH",
    "kn_IN",
    "ko_KR",
    "kok_IN",
    "ks_IN",
    "ks_IN@devanagari",
    "ku_TR",
    "kw_GB",
    "ky_KG",
    "lb_LU",
    "lg_UG",
    "li_BE",
    "li_NL",
    "lij_IT",
    "ln_CD",
    "lo_LA",
    "lt_LT",
    "lv_LV",
    "lzh_TW",
    "mag_IN",
    "mai_IN",
    "mai_NP",
    "mfe_MU",
    "mg_MG",
    "mhr_RU",
    "mi_NZ",
    "miq_NI",
    "mjw_IN",
    "mk_MK",
    "ml_IN",
    "mn_MN",
    "mni_IN",
    "mnw_MM",
    "mr_IN",
    "ms_MY",
    "mt_MT",
    "my_MM",
    "nan_TW",
    "nan_TW@latin",
    "nb_NO",
    "nds_DE",
    "nds_NL",
    "ne_NP",
    "nhn_MX",
    "niu_NU",
    "niu_NZ",
    "nl_AW",
    "nl_BE",
    "nl_BE@euro",
    "nl_NL",
    "nl_NL@euro",
    "nn_NO",
    "nr_ZA",
    "nso_ZA",
    "oc_FR",
    "om_ET",
    "om_KE",
    "or_IN",
    "os_RU",
    "pa_IN",
    "pa_PK",
    "pap_AW",
    "pap_CW",
    "pl_PL",
    "ps_AF",
    "pt_BR",
    "pt_PT",
    "pt_PT@euro",
    "quz_PE",
    "raj_IN",
    "ro_RO",
    "ru_RU",
    "ru_UA",
    "rw_RW",
    "sa_IN",
    "sah_RU",
    "sat_IN",
    "sc_IT",
    "sd_IN",
    "sd_IN@devanagari",
    "se_NO",
    "sgs_LT",
    "shn_MM",
    "shs_CA",
    "si_LK",
    "sid_ET",
    "sk_SK",
    "sl_SI",
    "sm_WS",
    "so_DJ",
    "so_ET",
    "so_KE",
    "so_SO",
    "sq_AL",
    "sq_MK",
    "sr_ME",
    "sr_RS",
    "sr_RS@latin",
    "ss_ZA",
    "st_ZA",
    "sv_FI",
    "sv_FI@euro",
    "sv_SE",
    "sw_KE",
    "sw_TZ",
    "szl_PL",
    "ta_IN",
    "ta_LK",
    "tcy_IN",
    "te_IN",
    "tg_TJ",
    "th_TH",
    "the_NP",
    "ti_ER",
    "ti_ET",
    "tig_ER",
    "tk_TM",
    "tl_PH",
    "tn_ZA",
    "to_TO",
    "tpi_PG",
    "tr_CY",
    "tr_TR",
    "ts_ZA",
    "tt_RU",
    "tt_RU@iqtelif",
    "ug_CN",
    "uk_UA",
    "unm_US",
    "ur_IN",
    "ur_PK",
    "uz_UZ",
    "uz_UZ@cyrillic",
    "ve_ZA",
    "vi_VN",
    "wa_BE",
    "wa_BE@euro",
    "wae_CH",
    "wal_ET",
    "wo_SN",
    "xh_ZA",
    "yi_US",
    "yo_NG",
    "yue_HK",
    "yuw_PG",
    "zh_CN",
    "zh_HK",
    "zh_SG",
    "zh_TW",
    "zu_ZA",
];

/// The region a language means when none is given, where that is not the language's own code
/// (`fr` → France) and the first in alphabetical order would be a surprise.
const USUAL_REGION: &[(&str, &str)] = &[
    ("ar", "SA"),
    ("bn", "BD"),
    ("ca", "ES"),
    ("cs", "CZ"),
    ("da", "DK"),
    ("el", "GR"),
    ("en", "GB"),
    ("et", "EE"),
    ("fa", "IR"),
    ("ga", "IE"),
    ("he", "IL"),
    ("hi", "IN"),
    ("hy", "AM"),
    ("ja", "JP"),
    ("ka", "GE"),
    ("kk", "KZ"),
    ("ko", "KR"),
    ("ms", "MY"),
    ("nb", "NO"),
    ("nn", "NO"),
    ("pt", "PT"),
    ("sl", "SI"),
    ("sq", "AL"),
    ("sr", "RS"),
    ("sv", "SE"),
    ("sw", "TZ"),
    ("uk", "UA"),
    ("ur", "PK"),
    ("vi", "VN"),
    ("zh", "CN"),
];

/// `fr`, `az`, `pt-BR`, `sr-Latn`: `^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$`, the shape of a BCP 47
/// tag without extensions. The one check for every place a language tag enters: the
/// recipients' `language` cell, a template file's `.fr` suffix and the HTML `lang` attribute.
/// A tag selects template files and lands in HTML, so it must never hold a path character or
/// a quote.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| {
            (2..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The chrono locale for a BCP 47 language tag: `language-REGION` when chrono has it, else
/// the language's usual locale. Case and `_` for `-` are accepted. A Latin or Cyrillic script
/// subtag picks glibc's `@latin` / `@cyrillic` variant (`sr-Latn`, `uz-Cyrl`); `zh-Hant`
/// means Taiwan; `iw` is Hebrew and `no` Norwegian Bokmål. `None` when chrono has no locale
/// for the language at all.
pub fn chrono_locale(tag: &str) -> Option<Locale> {
    let mut subtags = tag.trim().split(['-', '_']);
    let language = match subtags.next()?.to_ascii_lowercase().as_str() {
        "iw" => "he".to_owned(),
        "no" => "nb".to_owned(),
        other => other.to_owned(),
    };
    if language.len() < 2 || !language.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let (mut script, mut region) = (None, None);
    for subtag in subtags {
        match subtag.len() {
            4 if script.is_none() => script = Some(subtag.to_ascii_lowercase()),
            2 | 3 if region.is_none() => region = Some(subtag.to_ascii_uppercase()),
            _ => {}
        }
    }
    let modifier = match (language.as_str(), script.as_deref()) {
        (_, Some("latn")) => "@latin",
        ("uz", Some("cyrl")) => "@cyrillic",
        _ => "",
    };
    if language == "zh" && script.as_deref() == Some("hant") && region.is_none() {
        region = Some("TW".to_owned());
    }
    let usual = USUAL_REGION
        .iter()
        .find(|(l, _)| *l == language)
        .map(|(_, r)| (*r).to_owned());
    for region in [region, usual, Some(language.to_ascii_uppercase())]
        .iter()
        .flatten()
    {
        let name = format!("{language}_{region}");
        for name in [format!("{name}{modifier}"), name] {
            if let Ok(locale) = Locale::try_from(name.as_str()) {
                return Some(locale);
            }
        }
    }
    // A few locales have no region (`eo`); otherwise the first of the language's.
    if let Ok(locale) = Locale::try_from(language.as_str()) {
        return Some(locale);
    }
    let prefix = format!("{language}_");
    CHRONO_LOCALES
        .iter()
        .find(|name| name.starts_with(&prefix) && !name.contains('@'))
        .and_then(|name| Locale::try_from(*name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_have_a_two_or_three_letter_language_and_short_subtags() {
        for good in ["az", "fr", "sr-latn", "pt-BR", "zh-Hant-TW", "es-419"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "f",
            "french",
            "../x",
            "fr/x",
            "fr-",
            "fr-a",
            "en\" onload",
            "ə",
            "fr fr",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn tags_map_to_chrono_locales() {
        for (tag, locale) in [
            ("fr", Locale::fr_FR),
            ("fr-CA", Locale::fr_CA),
            ("FR_ca", Locale::fr_CA),
            ("fr-US", Locale::fr_FR),
            ("en", Locale::en_GB),
            ("en-US", Locale::en_US),
            ("az", Locale::az_AZ),
            ("ru", Locale::ru_RU),
            ("ar", Locale::ar_SA),
            ("ar-EG", Locale::ar_EG),
            ("he", Locale::he_IL),
            ("iw", Locale::he_IL),
            ("fa", Locale::fa_IR),
            ("ur", Locale::ur_PK),
            ("uk", Locale::uk_UA),
            ("ka", Locale::ka_GE),
            ("sr-Latn", Locale::sr_RS_latin),
            ("uz-Cyrl", Locale::uz_UZ_cyrillic),
            ("zh-Hant", Locale::zh_TW),
            ("no", Locale::nb_NO),
            ("ast", Locale::ast_ES),
            ("ps", Locale::ps_AF),
        ] {
            assert_eq!(chrono_locale(tag), Some(locale), "{tag}");
        }
    }

    #[test]
    fn every_chrono_locale_is_reachable_from_a_tag() {
        for name in CHRONO_LOCALES {
            let (language_region, modifier) = name.split_once('@').unwrap_or((name, ""));
            let Some((language, region)) = language_region.split_once('_') else {
                assert_eq!(
                    chrono_locale(name).map(|l| l.to_string()).as_deref(),
                    Some(*name)
                );
                continue;
            };
            let tag = match modifier {
                "" => format!("{language}-{region}"),
                "latin" => format!("{language}-Latn-{region}"),
                "cyrillic" => format!("{language}-Cyrl-{region}"),
                // euro, devanagari, saaho...: variants a language tag does not name.
                _ => continue,
            };
            assert_eq!(
                chrono_locale(&tag).map(|l| l.to_string()),
                Some((*name).to_owned()),
                "{tag}"
            );
        }
    }

    #[test]
    fn a_language_chrono_does_not_have_is_none() {
        for unknown in ["xx", "klingon", "", "e", "1a", "tlh", "x-private"] {
            assert_eq!(chrono_locale(unknown), None, "{unknown}");
        }
    }
}
