//! The dashboard's two languages. Every label is written in English in the code and looked up
//! here for 简体中文; a test checks that each label the pages use has its translation.

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `zh…` is 简体中文, anything else English.
    pub(crate) fn parse(s: &str) -> Lang {
        if s.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The BCP 47 code.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// A label in this language (the English itself when no translation exists).
    pub(crate) fn t(self, en: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh(en).unwrap_or(en),
        }
    }
}

/// Values of the analyses' fixed vocabularies (statuses, decisions, stages) in Chinese.
pub(crate) const VALUES_ZH: &[(&str, &str)] = &[
    ("scheduled", "未开始"),
    ("running", "进行中"),
    ("finished", "已结束"),
    ("ship", "上线"),
    ("don't ship", "不上线"),
    ("keep running", "继续运行"),
    ("fix assignment", "修复分流"),
    ("new", "新客"),
    ("active", "活跃"),
    ("at_risk", "流失风险"),
    ("churned", "已流失"),
    ("won_back", "已召回"),
    ("registered_not_purchased", "注册未购买"),
];

/// A value shown in a table cell, in the page's language when it is a known vocabulary word.
pub(crate) fn value(lang: Lang, v: &str) -> String {
    match lang {
        Lang::Zh => VALUES_ZH
            .iter()
            .find(|(e, _)| *e == v)
            .map_or_else(|| v.to_string(), |(_, z)| (*z).to_string()),
        Lang::En => v.to_string(),
    }
}

/// The Chinese of an English label.
pub(crate) fn zh(en: &str) -> Option<&'static str> {
    ZH.iter().find(|(e, _)| *e == en).map(|(_, z)| *z)
}

pub(crate) const ZH: &[(&str, &str)] = &[
    ("From", "开始"),
    ("To", "结束"),
    ("Channel", "渠道"),
    ("all channels", "全部渠道"),
    ("Apply", "应用"),
    ("Reset", "重置"),
    ("Sign out", "退出"),
    ("Period", "周期"),
    (
        "The date filter does not apply to this page",
        "日期筛选不作用于本页",
    ),
    (
        "The channel filter does not apply to this page",
        "渠道筛选不作用于本页",
    ),
    ("All data; no filter applied.", "全部数据，未筛选。"),
    (
        "Sign in with the server's read token.",
        "请输入服务器的读取令牌登录。",
    ),
    (
        "That token is not right. Try again.",
        "令牌不正确，请重试。",
    ),
    ("Read token", "读取令牌"),
    ("Sign in", "登录"),
    (
        "The token was printed when the server first started; it is stored in the workspace under server/read_token.",
        "令牌在服务器首次启动时打印，并保存在工作区的 server/read_token 中。",
    ),
    ("Error", "错误"),
    ("Back to the command centre", "返回作战指挥舱"),
    ("Report", "经营报告"),
    ("Contents", "目录"),
    ("compared with", "对比"),
    ("before:", "上期："),
    ("dropped", "流失"),
    ("Steps", "步骤"),
    ("Window", "窗口"),
    ("Show", "查看"),
    ("Funnel", "转化漏斗"),
    ("Step", "步骤"),
    ("Users", "用户数"),
    ("From previous", "较上一步"),
    ("From first", "较第一步"),
    ("Dropped", "流失人数"),
    ("Drop-off rate", "流失率"),
    ("Median seconds to convert", "转化用时中位数（秒）"),
    (
        "Bars are users reaching each step within the window of their first step; red lines are those who dropped before the next.",
        "条形为在第一步后的窗口内到达各步骤的用户数；红字为到下一步前流失的用户。",
    ),
    ("DAU", "日活"),
    ("WAU", "周活"),
    ("MAU", "月活"),
    ("Stickiness (DAU/MAU)", "粘性（日活/月活）"),
    ("Orders by hour and weekday", "下单时段分布（小时 × 星期）"),
    (
        "Darker cells are busier; hover a cell for its count. Hours are in the shop's time zone.",
        "颜色越深越活跃；悬停查看数值。时间为店铺时区。",
    ),
    ("Events by hour and weekday", "行为时段分布（小时 × 星期）"),
    (
        "All behaviour events: views, carts, orders.",
        "全部行为事件：浏览、加购、下单。",
    ),
    ("Daily, weekly and monthly active users", "日活、周活与月活"),
    (
        "Users with any event on the day, in the 7 days, in the 30 days up to it.",
        "当日、截至当日 7 天内、30 天内有任一行为的用户。",
    ),
    ("Active users", "活跃用户"),
    ("Date", "日期"),
    ("By category", "按类目"),
    (
        "Peak hours are the three busiest hours of the day for the category.",
        "高峰时段为该类目一天中最活跃的三个小时。",
    ),
    ("Category", "类目"),
    ("Events", "行为数"),
    ("Orders", "订单数"),
    ("Revenue", "销售额"),
    ("Peak hours", "高峰时段"),
    ("Retention by cohort", "同期群留存"),
    (
        "Share of each first-purchase cohort that ordered again k months later (the cohort's size in brackets).",
        "各首购同期群在第 k 个月再次下单的比例（括号内为同期群人数）。",
    ),
    ("Average", "平均"),
    (
        "Revenue per member (LTV curves)",
        "人均累计贡献（LTV 曲线）",
    ),
    (
        "Cumulative revenue per cohort member by months since the first purchase; the average and the seven latest cohorts.",
        "首购后各月的人均累计销售额；显示平均值与最近七个同期群。",
    ),
    ("LTV curves", "LTV 曲线"),
    ("Months since first purchase", "首购后月数"),
    ("Revenue per member", "人均销售额"),
    ("Flow of sessions", "会话流向"),
    (
        "Each column is a step of the session; bands are as wide as the sessions that move from one event to the next.",
        "每列为会话中的一步；色带宽度为从一个事件流向下一个事件的会话数。",
    ),
    ("Commonest paths", "最常见路径"),
    (
        "Share is of all sessions in the period.",
        "占比以周期内全部会话为基数。",
    ),
    ("Path", "路径"),
    ("Sessions", "会话数"),
    ("Share", "占比"),
    ("Repurchase rate", "复购率"),
    ("New customers", "新客数"),
    ("Repurchased", "复购人数"),
    ("Median days between purchases", "复购间隔中位数（天）"),
    ("Days between purchases", "复购间隔（天）"),
    ("Intervals", "间隔次数"),
    ("Repurchase", "复购"),
    (
        "New customers in the period who ordered again within 30 days of their first purchase day; bars are the days between consecutive purchase days.",
        "周期内的新客在首购日后 30 天内再次下单的比例；柱为相邻两个购买日之间的天数。",
    ),
    ("Value", "取值"),
    ("Customers", "客户数"),
    ("Rate", "比率"),
    ("Lifecycle by week", "每周用户生命周期"),
    (
        "New: first active; returning: active the week before too; resurrecting: back after a gap; dormant (below zero): active the week before, not this week.",
        "新增：首次活跃；留存：上周也活跃；回流：间隔后重新活跃；沉睡（零线以下）：上周活跃而本周未活跃。",
    ),
    ("Latest weeks", "最近几周"),
    (
        "Quick ratio = (new + resurrecting) / dormant; above 1 the base grows.",
        "增长速率 =（新增 + 回流）/ 沉睡；大于 1 表示用户盘在增长。",
    ),
    ("Week", "周"),
    ("New", "新增"),
    ("Returning", "留存"),
    ("Resurrecting", "回流"),
    ("Dormant", "沉睡"),
    ("Quick ratio", "增长速率"),
    (
        "The shop's data has no costs, so margins are unknown; only sales are shown.",
        "店铺数据没有成本，毛利未知；仅显示销量。",
    ),
    ("Sales × margin quadrants", "销量 × 毛利四象限"),
    (
        "Each dot is an item; dashed lines are the thresholds (median sales and margin rate) that split stars, traffic drivers, profit contributors and questions.",
        "每个点是一个商品；虚线为划分明星款、引流款、利润款与问题款的阈值（销量与毛利率中位数）。",
    ),
    ("Margin rate", "毛利率"),
    ("Key", "编号"),
    ("Name", "名称"),
    ("Units", "件数"),
    ("Units sold", "销量（件）"),
    ("Gross margin", "毛利"),
    ("Quadrant", "象限"),
    ("Action", "建议动作"),
    ("Categories", "类目"),
    ("Top items by revenue", "销售额最高的商品"),
    ("Return rate (units)", "退货率（件）"),
    ("Return rate (orders)", "退货率（订单）"),
    ("Good-review rate", "好评率"),
    ("Average rating", "平均评分"),
    ("Return rate against good-review rate", "退货率与好评率"),
    (
        "Each dot is an item with reviews; dashed lines are the shop's overall rates. Bottom right: many returns, few good reviews.",
        "每个点是一个有评价的商品；虚线为全店水平。右下角：退货多、好评少。",
    ),
    ("Quality-risk flags", "质量风险预警"),
    (
        "Items returned far more often than their category, with the evidence.",
        "退货率远高于所在类目的商品及其依据。",
    ),
    ("Item", "商品"),
    ("Return rate", "退货率"),
    ("Category median", "类目中位数"),
    ("Evidence", "依据"),
    ("Baskets", "购物篮数"),
    ("Items", "商品数"),
    ("Frequent itemsets", "频繁项集"),
    ("Minimum support", "最小支持度"),
    ("Rule", "规则"),
    ("Support", "支持度"),
    ("Confidence", "置信度"),
    ("Lift", "提升度"),
    ("Association rules", "关联规则"),
    (
        "Support: share of baskets with both sides; confidence: share of baskets with the left side that also hold the right; lift above 1: bought together more than by chance.",
        "支持度：同时包含两边的购物篮占比；置信度：包含左边的购物篮中也包含右边的比例；提升度大于 1：一起购买的概率高于随机。",
    ),
    ("Bundle suggestions", "组合推荐"),
    (
        "Order value of baskets with the bundle against those without.",
        "含该组合与不含该组合的订单金额对比。",
    ),
    ("Bundle", "组合"),
    ("AOV with", "含组合客单价"),
    ("AOV without", "不含组合客单价"),
    ("AOV change", "客单价变化"),
    ("Sell-through", "售罄率"),
    ("Share of SKUs sold", "动销率"),
    ("Inventory turnover", "库存周转率"),
    ("Days of inventory", "库存周转天数"),
    ("Stock-out rate", "缺货率"),
    ("On hand", "现有库存"),
    ("Turnover", "周转率"),
    ("Slowest-moving items", "滞销商品"),
    (
        "Items with the most days of inventory at the current rate of sale.",
        "按当前销售速度库存可售天数最多的商品。",
    ),
    ("Channel quality", "渠道质量"),
    (
        "UV: unique visitors; conversion: visitors who ordered; CAC: spend per new customer; ROAS: revenue per unit of spend.",
        "UV：独立访客；转化率：下单访客占比；CAC：每个新客的获客成本；ROAS：每单位投放带来的销售额。",
    ),
    ("Visitor → cart", "访客→加购"),
    ("Cart → order", "加购→下单"),
    ("Order → paid", "下单→支付"),
    ("Conversion", "转化率"),
    ("Spend", "投放花费"),
    ("90-day repurchase", "90 天复购率"),
    ("Weekly revenue by channel", "各渠道每周销售额"),
    (
        "Paid revenue of the orders each channel brought, summed by week.",
        "各渠道带来订单的已支付销售额，按周汇总。",
    ),
    ("Campaign", "活动"),
    ("Kind", "类型"),
    ("Discount cost", "优惠成本"),
    ("Incremental revenue", "增量销售额"),
    ("Margin-rate change", "毛利率变化"),
    ("Verdict", "结论"),
    ("Campaign results", "活动效果"),
    ("Method", "衡量方法"),
    ("Members", "成员数"),
    ("Compared with", "对照人数"),
    ("Pre-period check", "事前趋势检验"),
    ("95% interval", "95% 区间"),
    ("Incremental margin", "增量毛利"),
    ("Cost", "成本"),
    ("ROI interval", "ROI 区间"),
    ("Notes", "说明"),
    ("Holdout (randomised)", "随机保留组"),
    ("Matched (observational)", "匹配对照（观察性）"),
    ("Not estimated", "无法估计"),
    (
        "What each campaign caused, estimated against its randomised holdout or, without one, against matched non-members (observational), and its return.",
        "各活动带来的增量（以随机保留组为对照；没有保留组时对比匹配的非成员，属观察性估计）及其回报。",
    ),
    (
        "Promotions: order value against margin",
        "促销：客单价与毛利率",
    ),
    (
        "AOV and margin rate of the campaign's orders against the window's other orders (a description: campaign orders are selected, e.g. by a minimum spend), and members against their comparison group where there is one.",
        "活动订单与同期其他订单的客单价和毛利率对比（仅为描述：活动订单经过筛选，如满额门槛）；有对照组时另给出成员与对照组的对比。",
    ),
    ("AOV change vs comparison", "客单价变化（对比对照组）"),
    (
        "Margin-rate change vs comparison",
        "毛利率变化（对比对照组）",
    ),
    (
        "Holdout: members against those kept out of the campaign at random, over the campaign's window; every member counts, whether or not they redeemed. Matched (observational): without a holdout, members against non-members who behaved alike at the start (recency, orders, spend), change during the campaign against the window before (difference in differences); it holds only if both would have moved alike, which the pre-period check probes. Not estimated: neither is possible, so no effect or ROI is claimed.",
        "随机保留组：在活动期内，将成员与随机留出、未触达的客户对比；无论是否核销，每位成员都计入。匹配对照（观察性）：没有保留组时，将成员与活动开始时行为相当（最近购买、订单数、消费）的非成员对比，比较活动期与之前同长窗口的变化（双重差分）；前提是两组本会同样变化，事前趋势检验用于核查。无法估计：两者都不可行，因此不给出增量或 ROI。",
    ),
    (
        "Customers the campaign was sent to. Compared with: the holdout (kept out at random for measuring), or the matched non-members.",
        "活动触达的客户。对照人数：保留组（为衡量效果而随机留出）或匹配的非成员人数。",
    ),
    (
        "The members' paid revenue in the campaign's window (attributed orders' revenue when there is no member list).",
        "成员在活动期内的已支付销售额（无成员名单时为归因订单的销售额）。",
    ),
    (
        "Members' revenue per member minus the comparison group's (for matched: their changes), times members: what the campaign caused, with its 95% interval.",
        "成员人均销售额减去对照组人均销售额（匹配对照时为两组变化之差），再乘以成员数：活动带来的增量，附 95% 区间。",
    ),
    (
        "The same estimate one window earlier, before the campaign: its interval should hold zero; if not, the matched groups were already moving apart.",
        "在活动之前再往前一个窗口做同样的估计：区间应包含零；否则说明匹配的两组此前已在分化。",
    ),
    (
        "The same on gross margin (after discounts), when products carry costs.",
        "按毛利（扣除折扣后）同样计算，需要商品成本数据。",
    ),
    (
        "(Incremental margin − costs not already in the margin, such as fees) ÷ total campaign cost, with its 95% interval; discounts are counted once.",
        "（增量毛利 − 未计入毛利的成本，如服务费）÷ 活动总成本，附 95% 区间；折扣只计一次。",
    ),
    ("of revenue", "销售额占比"),
    ("Segments", "客户分层"),
    (
        "Customers per RFM segment, their share, and their share of revenue.",
        "各 RFM 分层的客户数、占比及销售额占比。",
    ),
    ("What to do with each segment", "各分层的运营动作"),
    ("Segment", "分层"),
    ("Mean recency (days)", "平均最近购买（天）"),
    ("Mean frequency", "平均购买次数"),
    ("(not a customer yet)", "（当时尚未成为客户）"),
    ("Movement between segments", "分层迁移"),
    ("The largest moves since", "以下为最大的迁移，起点"),
    ("k-means clusters", "k-means 聚类"),
    ("chosen by silhouette", "按轮廓系数选择"),
    ("Cluster", "簇"),
    ("Share of revenue", "销售额占比"),
    ("Mean spend", "平均消费"),
    ("Total expected value", "预期总价值"),
    ("Median CLV", "CLV 中位数"),
    ("Top 10% hold", "前 10% 客户占比"),
    ("Distribution of CLV", "客户终身价值分布"),
    ("Expected revenue over", "未来"),
    (
        "weeks, discounted; the last bar holds the top 1%.",
        "周的预期销售额（已折现）；最后一根柱为最高的 1%。",
    ),
    ("Most valuable customers", "最有价值的客户"),
    ("Customer", "客户"),
    ("Repeat purchases", "复购次数"),
    ("Expected purchases", "预期购买次数"),
    ("Expected order value", "预期客单价"),
    ("Churn rate", "流失率"),
    ("At-risk rate", "流失风险率"),
    ("Buyers by stage", "各阶段购买客户"),
    (
        "At the end of each month: new, active, won back, at risk (quiet longer than usual) and churned buyers.",
        "每月末的新客、活跃、召回、流失风险（沉默超过平常间隔）与已流失客户。",
    ),
    ("Win-back candidates", "召回名单"),
    (
        "At-risk and churned customers by expected value: contact these first.",
        "按预期价值排序的流失风险与已流失客户：优先触达。",
    ),
    ("Stage", "阶段"),
    ("Days since last order", "距上次下单（天）"),
    ("Usual interval (days)", "平常间隔（天）"),
    ("Spent so far", "累计消费"),
    ("Expected value", "预期价值"),
    ("Score", "得分"),
    ("Why", "推荐理由"),
    (
        "New or unknown customer: popular items for the context.",
        "新客或未知客户：按场景推荐热门商品。",
    ),
    (
        "From the customer's own views and purchases.",
        "基于该客户自己的浏览与购买。",
    ),
    ("For customer", "推荐给客户"),
    ("Goes with item", "与该商品搭配"),
    (
        "Items viewed or bought by the same customers.",
        "同一批客户浏览或购买过的商品。",
    ),
    ("Saved audiences", "已保存的人群"),
    (
        "Sizes are current members as of the period's end; an export downloads the members with their profile and records it in the export log.",
        "人数为截至周期末的当前成员；导出会下载成员及其画像，并记入导出日志。",
    ),
    ("Export log", "导出日志"),
    (
        "The latest exports, newest first.",
        "最近的导出，最新在前。",
    ),
    ("Exported at", "导出时间"),
    ("Audience", "人群"),
    ("Format", "格式"),
    ("Data as of", "数据截至"),
    ("Description", "说明"),
    ("Export", "导出"),
    ("Experiments", "实验"),
    ("Experiment", "实验"),
    ("Status", "状态"),
    ("Surface", "位置"),
    ("Variants", "版本"),
    ("Starts", "开始"),
    ("Ends", "结束"),
    (
        "Sample ratio mismatch: the split differs from the weights; do not trust the results until the assignment is fixed.",
        "样本比例不匹配：分流与权重不符；修复分流前请勿采信结果。",
    ),
    ("Variant", "版本"),
    ("Decision", "决策"),
    ("Reason", "原因"),
    (
        "Relative lift against control with",
        "相对对照组的提升，置信水平",
    ),
    (
        "intervals; coloured when the interval excludes zero.",
        "；区间不含零时着色。",
    ),
    ("Command centre", "作战指挥舱"),
    (
        "The shop's KPIs over the period against the period before; each card opens the page that explains it.",
        "本周期与上一周期的店铺核心指标；点击卡片查看解释该指标的页面。",
    ),
    (
        "Users who reach each step within the window, and where they drop.",
        "在窗口内到达各步骤的用户，以及在哪里流失。",
    ),
    ("Activity", "活跃时段"),
    (
        "When customers browse and buy: hour × weekday, by category, and daily actives.",
        "客户何时浏览与购买：小时 × 星期、按类目，以及日活。",
    ),
    ("Cohorts", "同期群"),
    (
        "Retention and revenue per member of each first-purchase cohort.",
        "各首购同期群的留存与人均贡献。",
    ),
    ("Paths", "用户路径"),
    (
        "What sessions do after their first event: the commonest sequences as a flow.",
        "会话在第一个事件之后做了什么：最常见的序列流向。",
    ),
    (
        "Share of new customers who buy again within 30 days, and the intervals between purchases.",
        "新客 30 天内再次购买的比例，以及购买间隔。",
    ),
    ("Lifecycle", "生命周期"),
    (
        "Active users each week: new, returning, resurrecting, and those gone dormant.",
        "每周活跃用户：新增、留存、回流与沉睡。",
    ),
    ("Products", "商品矩阵"),
    (
        "Sales × margin quadrants per item and category, with what to do about each.",
        "按商品与类目的销量 × 毛利四象限及建议动作。",
    ),
    ("Returns and reviews", "退货与评价"),
    (
        "Return rate against good-review rate per item, and the items flagged for quality risk.",
        "各商品的退货率与好评率，以及质量风险预警。",
    ),
    ("Market basket", "购物篮分析"),
    (
        "Items bought together: association rules and bundle suggestions.",
        "一起购买的商品：关联规则与组合推荐。",
    ),
    ("Inventory", "库存"),
    (
        "Sell-through, share of SKUs sold, turnover and slow movers.",
        "售罄率、动销率、周转与滞销商品。",
    ),
    ("Channels", "渠道"),
    (
        "Traffic, conversion, order value, acquisition cost and return on spend per channel.",
        "各渠道的流量、转化、客单价、获客成本与投放回报。",
    ),
    ("Campaigns", "营销活动"),
    (
        "What each campaign caused against its holdout or matched non-members, its ROI, and promotions' order value against margin.",
        "各活动相对保留组或匹配非成员带来的增量、ROI，以及促销的客单价与毛利率。",
    ),
    ("RFM segments", "RFM 分层"),
    (
        "Customers by recency, frequency and money: segments with actions, and how they moved.",
        "按最近购买、频次与金额划分客户：分层、运营动作与迁移。",
    ),
    ("Lifetime value", "客户终身价值"),
    (
        "Expected value of each customer over the next year (BG/NBD and Gamma-Gamma).",
        "每位客户未来一年的预期价值（BG/NBD 与 Gamma-Gamma 模型）。",
    ),
    ("Churn and win-back", "流失与召回"),
    (
        "Buyers' stages over time and the customers worth winning back.",
        "购买客户的阶段变化，以及值得召回的客户。",
    ),
    ("Recommendations", "个性化推荐"),
    (
        "What to show a chosen customer, and what goes with a chosen item.",
        "为指定客户推荐什么，以及与指定商品搭配什么。",
    ),
    ("Audiences", "人群包"),
    (
        "Saved customer audiences, their current sizes, and exports for the channels that act on them.",
        "已保存的客户人群、当前人数，以及导出给触达渠道。",
    ),
    (
        "Each experiment's lift per metric with its interval, and the verdict.",
        "各实验每个指标的提升、区间与结论。",
    ),
    ("Overview", "总览"),
    ("Snapshots out of stock", "缺货快照数"),
    ("Snapshots", "快照数"),
    ("Stock-outs", "缺货商品"),
    (
        "Best sellers that were out of stock at some inventory snapshots: sales lost.",
        "在部分库存快照中缺货的畅销商品：损失了销售。",
    ),
    (
        "customers are at risk of churning: export the win-back audience",
        "位客户有流失风险：导出召回人群",
    ),
    (
        "items are flagged for quality risk (returns far above their category)",
        "个商品有质量风险预警（退货率远高于类目）",
    ),
    (
        "SKUs ran out of stock at least once in",
        "个 SKU 在以下期间至少缺货一次：",
    ),
    (
        "stock-out rate, share of SKU snapshots with nothing on hand:",
        "缺货率，即库存快照中无货的占比：",
    ),
    (
        "SKUs are slow movers: consider a promotion or a bundle",
        "个 SKU 滞销：考虑促销或组合销售",
    ),
    ("Where to act", "行动清单"),
    (
        "What the figures ask for now; each line opens the page where it is done.",
        "当前数据提示要做的事；点击每一行进入对应页面处理。",
    ),
    ("People", "人"),
    ("Goods", "货"),
    ("Traffic", "场"),
    ("Customer operations", "客户运营"),
    ("Practice", "实践"),
    ("By acquisition channel", "按获客渠道"),
    ("By member tier", "按会员等级"),
    ("By first category", "按首购类目"),
    ("Active", "活跃"),
    ("Won back", "已召回"),
    ("At risk", "流失风险"),
    ("Churned", "已流失"),
    ("Mon", "周一"),
    ("Tue", "周二"),
    ("Wed", "周三"),
    ("Thu", "周四"),
    ("Fri", "周五"),
    ("Sat", "周六"),
    ("Sun", "周日"),
    (
        "The events table has too few funnel events (product_view, add_to_cart, order …) for a funnel.",
        "行为表中的漏斗事件（product_view、add_to_cart、order …）太少，无法构成漏斗。",
    ),
    (
        "No cohort has customers for these filters.",
        "在当前筛选下没有同期群。",
    ),
    (
        "No sessions with events for these filters.",
        "在当前筛选下没有会话。",
    ),
    ("No item is flagged.", "没有商品被预警。"),
    ("No rule reaches the thresholds.", "没有规则达到阈值。"),
    ("No bundle suggestion.", "暂无组合推荐。"),
    (
        "No audience is saved yet. Create one with `shoplens audience create NAME --segment at_risk …`.",
        "尚未保存人群。可用 `shoplens audience create NAME --segment at_risk …` 创建。",
    ),
    ("Nothing exported yet.", "尚无导出。"),
    (
        "No experiment is defined. Define one with `shoplens experiment define KEY …`.",
        "尚未定义实验。可用 `shoplens experiment define KEY …` 定义。",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The Chinese verdict states the same figures as the engine's English one.
    /// Every label the pages pass to `t(…)` or `empty(…)`, every page and area title and
    /// summary, and every (key, label) pair has a Chinese translation.
    #[test]
    fn every_label_is_translated() {
        let sources = [
            include_str!("pages.rs"),
            include_str!("../dashboard.rs"),
            include_str!("pages/command_centre.rs"),
            include_str!("pages/people.rs"),
            include_str!("pages/goods.rs"),
            include_str!("pages/traffic.rs"),
            include_str!("pages/customers.rs"),
            include_str!("pages/practice.rs"),
            include_str!("pages/frame.rs"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for pat in [
                ".t(\"",
                "empty(ctx, \"",
                "title: \"",
                "summary: \"",
                "\", \"",
            ] {
                let mut rest = src;
                while let Some(i) = rest.find(pat) {
                    rest = &rest[i + pat.len()..];
                    let Some(end) = rest.find('"') else { break };
                    let label = &rest[..end];
                    // (key, label) pairs: the label starts with a capital letter.
                    let is_pair = pat == "\", \"";
                    if (is_pair && !label.starts_with(|c: char| c.is_ascii_uppercase()))
                        || label.contains('{')
                    {
                        continue;
                    }
                    if zh(label).is_none() && !missing.contains(&label) {
                        missing.push(label);
                    }
                }
            }
        }
        for d in [
            "Mon",
            "Tue",
            "Wed",
            "Thu",
            "Fri",
            "Sat",
            "Sun",
            "DAU",
            "WAU",
            "MAU",
            "Units sold",
            "Revenue",
        ] {
            assert!(zh(d).is_some(), "{d}");
        }
        assert!(
            missing.is_empty(),
            "labels without a translation: {missing:?}"
        );
    }

    #[test]
    fn translations_are_unique_and_not_english() {
        for (i, (e, z)) in ZH.iter().enumerate() {
            assert!(
                !ZH[..i].iter().any(|(x, _)| x == e) || zh(e) == Some(z),
                "{e} twice"
            );
            assert_ne!(e, z);
        }
    }
}
